"""Cached directories are built once, atomically: a killed build never looks finished."""

from __future__ import annotations

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
