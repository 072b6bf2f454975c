"""Cached directories are built once, atomically: a killed build never looks finished."""

from __future__ import annotations

import os

import pytest

from data.io import build_once


def test_build_once_builds_then_reuses_and_recovers_from_a_killed_build(tmp_path):
    calls = []

    def build(d):
        calls.append(d)
        d.mkdir(parents=True)
        (d / "part").write_text("x")
        (d / "done").write_text("ok")

    target = tmp_path / "cache"
    (tmp_path / "cache.partial").mkdir()
    (tmp_path / "cache.partial" / "stale").write_text("left by a killed build")
    assert build_once(target, build, done="done") == target
    assert sorted(p.name for p in target.iterdir()) == ["done", "part"]  # the stale leftover is gone
    assert build_once(target, build, done="done") == target and len(calls) == 1

    def killed(d):
        d.mkdir(parents=True)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_once(tmp_path / "other", killed, done="done")
    assert not (tmp_path / "other").exists()  # never renamed into place


# A process that replaces a set of files and SIGKILLs itself at the Nth file-system step (fsync, rename, exchange,
# removal): "done" when N is past the last step.
_REPLACE_AND_DIE = """
import os, shutil, signal, sys
from pathlib import Path
import data.io as io

target, version, kill_at, exchange = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "exchange"
calls = 0

def step(fn):
    def wrapped(*a, **kw):
        global calls
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return fn(*a, **kw)
    return wrapped

os.fsync, os.rename, shutil.rmtree = step(os.fsync), step(os.rename), step(shutil.rmtree)
io._exchange = step(io._exchange if exchange else (lambda a, b: False))
io.replace_file_set(target, {f"t.{ext}": f"{version} {ext}".encode() for ext in ("md", "tex", "csv")})
print("done")
"""


def _set_of(target):
    return {p.name: p.read_text() for p in sorted(target.iterdir())} if target.exists() else None


@pytest.mark.parametrize("exchange", ["exchange", "two-renames"])
def test_a_file_set_killed_at_any_step_is_old_or_new_and_leaves_no_temporaries(exchange, tmp_path):
    import subprocess
    import sys

    from data.io import replace_file_set
    from tests.helpers import REPO

    (tmp_path / "k1").mkdir()
    (tmp_path / "k1" / ".table2.md.x1y2.tmp").write_text("left by an older, file-by-file writer")
    old = {f"t.{ext}": f"old {ext}" for ext in ("md", "tex", "csv")}
    new = {f"t.{ext}": f"new {ext}" for ext in ("md", "tex", "csv")}
    seen = set()
    for kill_at in range(1, 40):
        target = tmp_path / f"k{kill_at}" / "table2"
        replace_file_set(target, {k: v.encode() for k, v in old.items()})
        proc = subprocess.run([sys.executable, "-c", _REPLACE_AND_DIE, str(target), "new", str(kill_at), exchange],
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)  # fmt: skip
        after = _set_of(target)
        if exchange == "exchange" or after is not None:
            assert after in (old, new), f"killed at step {kill_at}: a mixed set {after}"
        # The next call finishes the job: the newer set, nothing else beside it (the fallback's old set is back
        # first if the kill fell between its two renames).
        replace_file_set(target, {k: f"newer {k}".encode() for k in old})
        assert _set_of(target) == {k: f"newer {k}" for k in old}
        assert sorted(p.name for p in target.parent.iterdir()) == ["table2"], f"temporaries left (step {kill_at})"
        seen.add("new" if after == new else "old")
        if proc.returncode == 0:
            assert proc.stdout.strip() == "done" and after == new
            break
    else:
        pytest.fail("the writer never finished")
    assert seen == {"old", "new"}  # kills fell both before and after the switch
