"""Tests for analysis/runs.py: real offline runs written by wandb 0.31, read back from their files; a fake Api.

Run: ``.venv/bin/pytest tests/test_runs_reader.py``. The runs are written once per module, in this process (one
``wandb.init`` here takes about 0.4 s for the first run and 0.05 s after, 300 rows about 0.1 s), into tmp folders.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from analysis.runs import (
    HISTORY_INDEX,
    RUN_COLUMNS,
    RunReadWarning,
    RunTables,
    history_of,
    read_api_runs,
    read_offline_runs,
    runs_in_group,
)
from experiments.wandb_files import read_records, scan_chunks, wait_for_exit_record

REPO = Path(__file__).resolve().parent.parent
N_ROWS = 300
CONFIG = {"method": "grpo", "seed": 0, "train": {"lr": 1e-6, "steps": 300}, "grpo": {"G": 8, "beta": 0.04}}
LONG_NOTE = "audio " * 12_000  # 72 kB: one record spread over three 32 KiB blocks (FIRST, MIDDLE, LAST chunks)


def loss(step: int) -> float:
    return 1.0 / (step + 1)


def eval_avg(step: int) -> float:
    return 0.5 + step / 1000


@dataclass
class Written:
    """Where the test runs were written, and how long each took."""

    root: Path
    seconds: dict[str, float] = field(default_factory=dict)

    def file(self, run_id: str) -> Path:
        files = sorted(p for p in (self.root / "wandb").glob(f"offline-run-*/run-{run_id}.wandb"))
        assert len(files) == 1, files
        return files[0]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Written]:
    """Four sessions the way our trainers log: a 300-row GRPO run, a short SFT run, a run resumed once."""
    import wandb

    root = tmp_path_factory.mktemp("wandb_runs")
    out = Written(root)
    settings = wandb.Settings(
        x_disable_stats=True, x_disable_meta=True, console="off", save_code=False, disable_git=True,
        disable_job_creation=True,
    )  # fmt: skip

    def init(run_id: str, group: str, name: str, tags: list[str], config: dict[str, Any]) -> Any:
        return wandb.init(
            project="r1-aqa-test", group=group, name=name, tags=tags, config=config, dir=str(root),
            mode="offline", id=run_id, resume="allow", settings=settings,
        )  # fmt: skip

    with pytest.MonkeyPatch.context() as mp:
        for var in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
            mp.setenv(var, str(root))
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_SILENT", "true")

        start = time.perf_counter()
        run = init("grpo0", "grpo-p2", "grpo-p2-toy-s0", ["grpo", "toy", "p2"], CONFIG)
        try:
            for step in range(N_ROWS):
                row = {"train/loss": loss(step), "train/global_step": step}
                if step % 50 == 49:
                    row["eval/test/avg"] = eval_avg(step)
                wandb.log(row)
            run.summary["eval/test/best"] = 0.75
        finally:
            run.finish()
        out.seconds["300-row run"] = time.perf_counter() - start

        start = time.perf_counter()
        run = init("sft0", "sft-p2", "sft-p2-toy-s0", ["sft", "toy", "p2"], {**CONFIG, "method": "sft"})
        try:
            for step in range(10):
                wandb.log({"train/loss": 2.0 - step / 10, "train/global_step": step, "grad_norm": 1.0})
            wandb.log({"note": LONG_NOTE, "nested": {"a": 1, "b": {"c": 2}}, "grad_norm": float("nan")})
        finally:
            run.finish()
        out.seconds["11-row run"] = time.perf_counter() - start

        for session, steps in enumerate((range(0, 100), range(100, 150))):
            start = time.perf_counter()
            run = init("resumed0", "grpo-p3", "grpo-p3-toy-s0", ["grpo", "toy", "p3"], {**CONFIG, "session": session})
            try:
                for step in steps:
                    wandb.log({"train/loss": loss(step), "train/global_step": step})
                run.summary[f"last_of_session{session}"] = steps[-1]
            finally:
                run.finish()
            out.seconds[f"resumed session {session}"] = time.perf_counter() - start
    yield out
    wandb.teardown()  # stop the wandb-core service this process started


@pytest.fixture(scope="module")
def tables(written: Written) -> RunTables:
    return read_offline_runs(written.root / "wandb")


def test_writing_times(written: Written) -> None:
    # Recorded for the report; generous bound so a slow machine does not fail the suite.
    print({k: round(v, 3) for k, v in written.seconds.items()})
    assert sum(written.seconds.values()) < 60


def test_schema(tables: RunTables) -> None:
    assert list(tables.runs.columns[: len(RUN_COLUMNS)]) == list(RUN_COLUMNS)
    assert list(tables.history.columns[:2]) == list(HISTORY_INDEX)
    assert tables.problems == []
    assert sorted(tables.runs["run_id"]) == ["grpo0", "resumed0", "sft0"]  # latest-run symlink not read twice
    assert (tables.runs["source"] == "offline").all()


def test_run_fields_config_and_summary(tables: RunTables, written: Written) -> None:
    run = tables.runs.set_index("run_id").loc["grpo0"]
    assert run["name"] == "grpo-p2-toy-s0" and run["group"] == "grpo-p2"
    assert run["tags"] == ("grpo", "toy", "p2") and run["state"] == "finished"
    assert run["files"] == (str(written.file("grpo0")),)
    assert run["config"] == CONFIG  # nested dicts whole; the internal _wandb key hidden
    assert run["config.train.lr"] == 1e-6 and run["config.grpo.G"] == 8 and run["config.method"] == "grpo"
    summary = run["summary"]
    assert summary["train/loss"] == loss(N_ROWS - 1) and summary["train/global_step"] == N_ROWS - 1
    assert summary["eval/test/avg"] == eval_avg(N_ROWS - 1) and summary["eval/test/best"] == 0.75
    assert summary["_step"] == N_ROWS - 1


def test_every_history_row(tables: RunTables) -> None:
    history = history_of(tables, "grpo0")
    assert len(history) == N_ROWS
    assert history["_step"].tolist() == list(range(N_ROWS))
    assert history["train/global_step"].tolist() == list(range(N_ROWS))
    assert history["train/loss"].tolist() == [loss(s) for s in range(N_ROWS)]
    evals = history.dropna(subset=["eval/test/avg"])
    assert evals["_step"].tolist() == list(range(49, N_ROWS, 50))
    assert evals["eval/test/avg"].tolist() == [eval_avg(s) for s in range(49, N_ROWS, 50)]
    assert "note" not in history.columns  # only this run's metrics


def test_large_record_nested_keys_and_nan(tables: RunTables) -> None:
    history = history_of(tables, "sft0")
    assert len(history) == 11
    last = history.iloc[-1]
    assert last["note"] == LONG_NOTE  # read back across three blocks
    assert last["nested/a"] == 1 and last["nested/b/c"] == 2
    assert math.isnan(last["grad_norm"]) and history["grad_norm"].iloc[:10].tolist() == [1.0] * 10
    assert history["train/loss"].iloc[:10].tolist() == [2.0 - s / 10 for s in range(10)]


def test_resumed_run_is_merged(tables: RunTables, written: Written) -> None:
    runs = tables.runs.set_index("run_id")
    run = runs.loc["resumed0"]
    assert len(run["files"]) == 2 and all(Path(f).name == "run-resumed0.wandb" for f in run["files"])
    assert run["state"] == "finished" and run["config"]["session"] == 1
    assert run["summary"]["last_of_session0"] == 99 and run["summary"]["last_of_session1"] == 149
    assert run["summary"]["train/global_step"] == 149
    history = history_of(tables, "resumed0")
    assert history["train/global_step"].tolist() == list(range(150))
    assert history["train/loss"].tolist() == [loss(s) for s in range(150)]
    # wandb restarts _step at 0 in an offline resumed session; the reader continues it.
    assert history["_step"].tolist() == list(range(150))


def test_damaged_files_are_named_and_the_rest_read(tmp_path: Path, written: Written) -> None:
    root = tmp_path / "wandb"
    shutil.copytree(written.root / "wandb", root, symlinks=True)
    cut = root / written.file("grpo0").relative_to(written.root / "wandb")
    data = cut.read_bytes()
    # Cut inside a record: a cut that lands exactly on a chunk boundary (or in a block's zero padding) leaves a
    # shorter but intact file, which made this test fail now and then (the file's size varies from run to run).
    half = next(n for n in range(len(data) // 2, 0, -1) if read_records(data[:n])[1] is not None)
    cut.write_bytes(data[:half])
    killed = root / "offline-run-20260101_000000-killed0" / "run-killed0.wandb"
    killed.parent.mkdir()
    killed.write_bytes(data[:7])  # what a run killed before its first flush leaves

    with pytest.warns(RunReadWarning) as caught:
        tables = read_offline_runs(root)
    assert len(tables.problems) == 2
    assert any(str(cut) in p and "truncated" in p for p in tables.problems)
    assert any(str(killed) in p and "no records" in p for p in tables.problems)
    assert {str(w.message) for w in caught} >= set(tables.problems)

    runs = tables.runs.set_index("run_id")
    assert runs.loc["killed0", "state"] == "unfinished" and runs.loc["killed0", "files"] == (str(killed),)
    assert runs.loc["grpo0", "state"] == "unfinished"  # the exit record was in the lost half
    assert runs.loc["grpo0", "config"] == CONFIG and runs.loc["grpo0", "group"] == "grpo-p2"
    prefix = history_of(tables, "grpo0")
    assert 0 < len(prefix) < N_ROWS
    assert prefix["train/loss"].tolist() == [loss(s) for s in range(len(prefix))]
    assert len(history_of(tables, "sft0")) == 11 and len(history_of(tables, "resumed0")) == 150


def test_bad_crc_stops_the_file_there(tmp_path: Path, written: Written) -> None:
    data = bytearray(written.file("grpo0").read_bytes())
    complete, problem = read_records(bytes(data))
    assert problem is None and len(complete) > 2 * N_ROWS
    # Flip a byte inside a chunk's payload (a flip in a chunk header reads as a bad length or type instead).
    data[_payload_byte_near(bytes(data), len(data) // 2)] ^= 0xFF
    prefix, problem = read_records(bytes(data))
    assert problem is not None and "bad crc" in problem
    assert 0 < len(prefix) < len(complete) and prefix == complete[: len(prefix)]


def _payload_byte_near(data: bytes, target: int) -> int:
    """Offset of the middle byte of the first non-empty chunk payload that ends after ``target``."""
    chunks, problem = scan_chunks(data)
    assert problem is None
    return next(c.start + c.length // 2 for c in chunks if c.length and c.end > target)


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "shorter than"), (b":W&B", "shorter than"), (b"PK\x03\x04\x00\x00\x00", "not a W&B run file")],
)
def test_bad_headers(data: bytes, message: str) -> None:
    payloads, problem = read_records(data)
    assert payloads == [] and problem is not None and message in problem


def test_copied_session_counted_once(tmp_path: Path, written: Written) -> None:
    root = tmp_path / "wandb"
    shutil.copytree(written.root / "wandb", root, symlinks=True)
    original = root / written.file("sft0").relative_to(written.root / "wandb")
    shutil.copytree(original.parent, root / "backup" / original.parent.name)
    with pytest.warns(RunReadWarning, match="duplicate"):
        tables = read_offline_runs(root)
    assert len(history_of(tables, "sft0")) == 11


def test_helpers(tables: RunTables) -> None:
    group = runs_in_group(tables, "grpo-p2")
    assert group.runs["run_id"].tolist() == ["grpo0"] and len(group.history) == N_ROWS
    assert "note" not in group.history.columns
    assert runs_in_group(tables, "no-such-group").runs.empty
    with pytest.raises(KeyError, match="grpo0"):
        history_of(tables, "nope")


def test_missing_dir_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_offline_runs(tmp_path / "absent")


def test_importing_the_reader_does_not_import_wandb() -> None:
    code = "import sys, analysis.runs; assert 'wandb' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})


# ----------------------------------------------------------------------------------------------------------------
# The API path, against a fake Api with the attributes the reader uses


class FakeSummary:
    """Like wandb's HTTPSummary: keys() and [] but not a dict, nested values not dicts either."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def keys(self) -> Any:
        return self._data.keys()

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        return FakeSummary(value) if isinstance(value, dict) else value


@dataclass
class FakeRun:
    id: str
    name: str
    group: str
    tags: list[str]
    config: dict[str, Any]
    summary: FakeSummary
    state: str
    rows: list[dict[str, Any]]

    def scan_history(self) -> Iterator[dict[str, Any]]:
        if self.state == "broken":
            raise ConnectionError("server went away")
        yield from self.rows

    def history(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("history() is sampled; the reader must use scan_history()")


class FakeApi:
    calls: list[tuple[str, Any]] = []

    def runs(self, path: str, filters: dict[str, Any] | None = None) -> list[FakeRun]:
        FakeApi.calls.append((path, filters))
        rows = [{"_step": s, "train/loss": loss(s), "train/global_step": s, "_runtime": 0.1 * s} for s in range(700)]
        rows[99]["eval"] = {"test": {"avg": 0.6}}
        return [
            FakeRun(
                "a1", "grpo-p2-toy-s0", "grpo-p2", ["grpo", "toy", "p2"], {**CONFIG, "_wandb": {"x": 1}},
                FakeSummary({"train/loss": loss(699), "_wandb": {"runtime": 3}}), "finished", rows,
            ),
            FakeRun("b2", "sft-p2-toy-s0", "sft-p2", ["sft", "toy", "p2"], CONFIG, FakeSummary({}), "broken", []),
        ]  # fmt: skip


def test_api_reader_with_a_fake_api(monkeypatch: pytest.MonkeyPatch, tables: RunTables) -> None:
    import wandb

    monkeypatch.setattr(wandb, "Api", FakeApi)
    with pytest.warns(RunReadWarning, match="b2"):
        api_tables = read_api_runs("ent/proj", filters={"group": "grpo-p2"})
    assert FakeApi.calls[-1] == ("ent/proj", {"group": "grpo-p2"})
    assert list(api_tables.runs.columns[: len(RUN_COLUMNS)]) == list(tables.runs.columns[: len(RUN_COLUMNS)])
    assert set(api_tables.runs.columns) == set(tables.runs.columns) - {"config.session"}  # same config columns
    run = api_tables.runs.set_index("run_id").loc["a1"]
    assert run["source"] == "api" and run["tags"] == ("grpo", "toy", "p2") and run["group"] == "grpo-p2"
    assert run["config"] == CONFIG and run["config.grpo.beta"] == 0.04
    assert run["summary"] == {"train/loss": loss(699), "_wandb": {"runtime": 3}}
    history = history_of(api_tables, "a1")
    assert list(history.columns[:2]) == list(HISTORY_INDEX)
    assert len(history) == 700 and history["_step"].tolist() == list(range(700))
    assert history["train/loss"].tolist() == [loss(s) for s in range(700)]
    assert history.dropna(subset=["eval/test/avg"])["_step"].tolist() == [99]  # nested keys joined with "/"
    assert api_tables.problems == ["ent/proj/b2: history not read: ConnectionError('server went away')"]
    assert history_of(api_tables, "b2").empty


def test_waiting_for_a_session_end_sees_the_exit_record(tmp_path: Path, written: Written) -> None:
    finished = written.file("grpo0")
    assert wait_for_exit_record(finished, timeout_s=0.0)
    unfinished = tmp_path / finished.name  # the same session cut before its last records: no exit yet
    data = finished.read_bytes()
    unfinished.write_bytes(data[: len(data) // 2])
    assert not wait_for_exit_record(unfinished, timeout_s=0.3, poll_s=0.1)
    assert not wait_for_exit_record(tmp_path / "missing.wandb", timeout_s=0.0)
    # The service finishes writing while we wait: the grown file is parsed again and its exit record seen.
    finisher = threading.Timer(0.3, unfinished.write_bytes, args=(data,))
    finisher.start()
    try:
        assert wait_for_exit_record(unfinished, timeout_s=10.0, poll_s=0.05)
    finally:
        finisher.join()
