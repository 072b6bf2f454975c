"""Faults that must never change what a table reports: hard kills, resumes, concurrent writers, scratch runs.

Each test drives real processes (``python -m experiments run ... --profile smoke``) and kills them with
``os.kill`` at a named moment; nothing is mocked. The smoke profile trains 4 steps with a checkpoint every 2.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.record import missing_in_wandb, record_rows, wandb_logged_rows
from tests.helpers import REPO

STEP = "train/global_step"


def _env(root: Path) -> dict[str, str]:
    # Without WANDB_SERVICE: a test of this session that ran wandb in-process set it, and a run started with it
    # would use that service (kept alive by pytest), so a killed run's W&B stream would outlive the kill.
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    return {**env, "R1AQA_OUTPUTS": str(root), "WANDB_DIR": str(root / "wandb"), "PYTHONPATH": str(REPO),
            "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip


def _run(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "experiments", "run", *args], env=_env(root), cwd=REPO,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    if check and proc.returncode != 0:
        pytest.fail(f"run {args} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc


def _start(root: Path, *args: str) -> subprocess.Popen:
    # A session of its own: the kill below takes the run's whole process group (its W&B service too), as a
    # scheduler or a terminal's kill of the job does.
    # stderr goes to a file: a pipe nobody reads could fill up and stall the run.
    log = open(root / f"run-{time.monotonic_ns()}.stderr", "w+")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen([sys.executable, "-m", "experiments", "run", *args], env=_env(root), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=log, text=True, start_new_session=True)  # fmt: skip
    proc.stderr_file = log
    return proc


def _eval_steps(run_dir: Path) -> list[int]:
    path = run_dir / "checkpoint_evals.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()]


def _kill_when(proc: subprocess.Popen, moment, what: str, timeout: float = 240) -> None:
    """SIGKILL ``proc`` as soon as ``moment()`` is true (polled every 5 ms)."""
    deadline = time.time() + timeout
    while not moment():
        if proc.poll() is not None:
            proc.stderr_file.seek(0)
            pytest.fail(f"the run ended (rc {proc.returncode}) before {what}:\n{proc.stderr_file.read()[-3000:]}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)
    os.kill(-proc.pid, signal.SIGKILL)  # the process group (see _start)
    proc.wait()


def _wandb_eval_rows(run_id: str, root: Path) -> list[dict]:
    return [r for r in wandb_logged_rows(run_id, root / "wandb") if "eval/test/avg" in r]


def _state(run_dir: Path, root: Path) -> str:
    from analysis.runs import read_offline_runs

    run_id = (run_dir / "wandb_run_id").read_text().strip()
    runs = read_offline_runs(root / "wandb").runs
    return runs[runs.run_id == run_id].state.iloc[0]


# ---------------------------------------------------------------------------------------------------------------
# 1. Checkpoint evaluations lost from W&B after a hard kill


@pytest.mark.parametrize("moment", ["during", "after"])
def test_checkpoint_evaluation_killed_is_relogged_on_resume(moment, tmp_path):
    run_dir = tmp_path / "smoke" / "sft-lora" / "seed0"
    proc = _start(tmp_path, "sft-lora", "--profile", "smoke")
    if moment == "during":  # checkpoint 2's test predictions exist, its row is not recorded yet
        _kill_when(proc, lambda: (run_dir / "checkpoint-2" / "eval" / "test").is_dir() and 2 not in _eval_steps(
            run_dir), "checkpoint 2's evaluation")  # fmt: skip
    else:  # checkpoint 2's row was just written to disk (and handed to W&B, which buffers it)
        _kill_when(proc, lambda: 2 in _eval_steps(run_dir), "checkpoint 2's recorded evaluation")
    run_id = (run_dir / "wandb_run_id").read_text().strip()
    lost = missing_in_wandb(record_rows(run_dir), wandb_logged_rows(run_id, tmp_path / "wandb"))
    if moment == "after":
        # The precondition that makes this test able to fail: W&B had not flushed what the disk holds.
        assert any(r.get(STEP) == 2 and "eval/test/avg" in r for r in lost), "W&B flushed before the kill"

    resumed = _run(tmp_path, "sft-lora", "--profile", "smoke", "--resume")
    assert "re-logged" in resumed.stdout or not lost

    assert _eval_steps(run_dir) == [0, 2, 4], "every checkpoint evaluated and recorded exactly once"
    logged = _wandb_eval_rows(run_id, tmp_path)
    assert sorted(r[STEP] for r in logged) == [0, 2, 4], "W&B holds each evaluation once, at its own step"
    assert missing_in_wandb(record_rows(run_dir), wandb_logged_rows(run_id, tmp_path / "wandb")) == []
    assert (run_dir / "run_complete.json").exists()
    assert _state(run_dir, tmp_path) == "finished"


def test_final_evaluation_is_recorded_once(tmp_path):
    run_dir = tmp_path / "smoke" / "sft-full" / "seed0"
    _run(tmp_path, "sft-full", "--profile", "smoke")
    run_id = (run_dir / "wandb_run_id").read_text().strip()
    assert _eval_steps(run_dir) == [0, 2, 4]
    assert sorted(r[STEP] for r in _wandb_eval_rows(run_id, tmp_path)) == [0, 2, 4]
    train_steps = [json.loads(x)[STEP] for x in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert train_steps == [1, 2, 3, 4], "every training log row is on disk"
    # 8. Only the latest checkpoint keeps optimizer and scheduler state; every checkpoint keeps its weights.
    assert not (run_dir / "checkpoint-2" / "optimizer.pt").exists()
    assert not (run_dir / "checkpoint-2" / "scheduler.pt").exists()
    assert (run_dir / "checkpoint-2" / "model.safetensors").exists()
    assert (run_dir / "checkpoint-4" / "optimizer.pt").exists()


def test_keep_optimizer_all_keeps_every_optimizer_state(tmp_path):
    out = tmp_path / "keep-all"
    _run(tmp_path, "sft-lora", "--profile", "smoke", "--output-dir", str(out), "--set", "train.keep_optimizer=all")
    assert (out / "checkpoint-2" / "optimizer.pt").exists() and (out / "checkpoint-4" / "optimizer.pt").exists()


# ---------------------------------------------------------------------------------------------------------------
# 2. --resume keeps the stored configuration; 3. resuming a finished run changes nothing


def test_resume_keeps_the_stored_configuration_and_refuses_conflicts(tmp_path):
    out = tmp_path / "scratch"
    args = ["sft-lora", "--profile", "smoke", "--output-dir", str(out)]
    proc = _start(tmp_path, *args, "--set", "train.learning_rate=0.05")
    _kill_when(proc, lambda: 2 in _eval_steps(out), "checkpoint 2's recorded evaluation")

    refused = _run(tmp_path, *args, "--resume", "--set", "train.learning_rate=0.001", check=False)
    assert refused.returncode == 2
    assert "train.learning_rate" in refused.stderr and "0.05" in refused.stderr and "0.001" in refused.stderr

    _run(tmp_path, *args, "--resume")  # without the --set: the stored 0.05 goes on
    stored = json.loads((out / "experiment.json").read_text())
    assert stored["experiment"]["train"]["learning_rate"] == 0.05
    assert stored["adhoc"] is True and stored["canonical"] is False
    assert any("learning_rate" in r for r in stored["adhoc_reasons"])
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    lrs = [h["learning_rate"] for h in state["log_history"] if "learning_rate" in h]
    assert lrs[-1] == pytest.approx(0.05 / 4), "steps 3-4 decayed from the stored 0.05 (linear over 4 steps)"

    from analysis.runs import read_offline_runs

    runs = read_offline_runs(tmp_path / "wandb").runs
    run = runs[runs.run_id == (out / "wandb_run_id").read_text().strip()].iloc[0]
    assert run.config["experiment"]["train"]["learning_rate"] == 0.05 and run.config["adhoc"] is True
    assert "adhoc" in run.tags


def test_resuming_a_finished_run_trains_no_further(tmp_path):
    run_dir = tmp_path / "smoke" / "sft-lora" / "seed0"
    _run(tmp_path, "sft-lora", "--profile", "smoke")
    before = sorted(p.name for p in run_dir.glob("checkpoint-*"))
    again = _run(tmp_path, "sft-lora", "--profile", "smoke", "--resume")
    assert "already complete" in again.stdout
    # Killed after training but before the run was marked complete: the last checkpoint is loaded, no step taken.
    (run_dir / "run_complete.json").unlink()
    _run(tmp_path, "sft-lora", "--profile", "smoke", "--resume")
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == before == ["checkpoint-0", "checkpoint-2",
                                                                              "checkpoint-4"]  # fmt: skip
    assert _eval_steps(run_dir) == [0, 2, 4]
    assert (run_dir / "run_complete.json").exists()


# ---------------------------------------------------------------------------------------------------------------
# 4. One writer per run directory and per cache entry


_HOLD = """
import sys, time
from experiments.record import RunDirLock
with RunDirLock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_writer_is_refused_and_a_killed_holder_does_not_block(tmp_path):
    run_dir = tmp_path / "smoke" / "direct" / "seed0"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(run_dir)], env=_env(tmp_path), cwd=REPO,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        second = _run(tmp_path, "direct", "--profile", "smoke", check=False)
        assert second.returncode == 2
        assert f"pid {holder.pid}" in second.stderr and str(run_dir) in second.stderr
        assert not (run_dir / "experiment.json").exists(), "the refused writer wrote nothing"
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    _run(tmp_path, "direct", "--profile", "smoke")  # the dead holder's lock blocks nobody
    assert (run_dir / "run_complete.json").exists()


_BUILD = """
import sys, time
from pathlib import Path
from data.io import build_once

def build(partial):
    partial.mkdir(parents=True)
    with open(Path(sys.argv[2]), "a") as log:
        log.write("built\\n")
    time.sleep(1.0)
    (partial / "done").write_text("ok")

build_once(Path(sys.argv[1]), build, done="done")
print((Path(sys.argv[1]) / "done").read_text())
"""


def test_concurrent_cache_builds_wait_for_one_another(tmp_path):
    target, log = tmp_path / "cache" / "entry", tmp_path / "builds.log"
    procs = [subprocess.Popen([sys.executable, "-c", _BUILD, str(target), str(log)], env=_env(tmp_path), cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    assert all(out.strip().endswith("ok") for out, _ in results)
    assert log.read_text() == "built\n", "built exactly once; the other process waited and used it"


# ---------------------------------------------------------------------------------------------------------------
# 5. Scratch runs are ad hoc and never make the table


def test_a_run_outside_its_canonical_directory_is_ad_hoc_and_not_selected(tmp_path):
    from analysis.runs import read_offline_runs
    from analysis.select import pick_runs

    scratch = tmp_path / "elsewhere"
    _run(tmp_path, "direct", "--profile", "smoke", "--output-dir", str(scratch))
    stored = json.loads((scratch / "experiment.json").read_text())
    assert stored["adhoc"] is True and stored["canonical"] is False
    assert any("--output-dir" in r for r in stored["adhoc_reasons"])
    tables = read_offline_runs(tmp_path / "wandb")
    picked, notes = pick_runs(tables, "smoke", ["direct"])
    assert "direct" not in picked and any("ad hoc" in n for n in notes)

    canonical = tmp_path / "smoke" / "direct" / "seed0"
    _run(tmp_path, "direct", "--profile", "smoke")
    assert json.loads((canonical / "experiment.json").read_text())["canonical"] is True
    picked, _ = pick_runs(read_offline_runs(tmp_path / "wandb"), "smoke", ["direct"])
    assert [r["config"]["output_dir"] for r in picked["direct"]] == [str(canonical)]
